"""Using a trained model: text from a prompt, labels of a text, translations.

sampling.py   Sampling (every setting of a generation, checked once) and sample_next
generate.py   the lecture's generate, the key/value-cache policies, batches, stop strings,
              streaming
predict.py    an encoder's labels, scores and [MASK] fills
beam.py       an encoder-decoder's greedy decoding and beam search, with the KV cache
translate.py  texts in, translations out (batched, or streamed)
"""

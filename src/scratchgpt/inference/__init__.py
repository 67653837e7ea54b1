"""Using a trained model: text from a prompt.

    sampling.py  Sampling (every setting of a generation, checked once) and sample_next
    generate.py  the lecture's generate, the key/value-cache policies, batches, stop strings,
                 streaming
"""

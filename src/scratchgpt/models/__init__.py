"""Model families, built from the blocks of `scratchgpt.nn`.

    gpt.py       BigramLanguageModel (the lecture's baseline) and GPTLanguageModel
    encoder.py   EncoderModel: the BERT-like encoder
    heads.py     the encoder's heads: masked-LM, sequence (label or score), token
    seq2seq.py   Seq2SeqModel: the encoder-decoder, with cross-attention
    registry.py  build_model: the model class of each family (`config.kind`)
    convert.py   convert: a trained model moved between the readable and the fast face

Every model keeps one contract, `forward(inputs..., targets=None) -> (outputs, loss)`, and imports
nothing from training, data files or the command line.
"""

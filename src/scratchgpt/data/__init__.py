"""Text in, tokens out: everything a model family's training data needs, and no model.

    corpus.py              find the text (Tiny Shakespeare ships here), encode it once into a token
                           file, the 90/10 split, random windows X and Y shifted by one
    tokenizer.py           characters to integers and back, saved as tokenizer.json
    tinyshakespeare.txt.bz2  the default corpus (1.1 MB of text, checked by sha256)
"""

"""Text in, tokens out: everything a model family's training data needs, and no model.

corpus.py              find the text (Tiny Shakespeare ships here), encode it once into a token
                       file, the 90/10 split, random windows X and Y shifted by one
tokenizer.py           characters to integers and back, saved as tokenizer.json
masking.py             BERT's 80/10/10 masking, for the encoder's pretraining
sequences.py           texts framed as the encoder reads them: [CLS] text [SEP], padded
speeches.py, labelled.py, reviews.py
                       the encoder's fine-tuning data: speeches of the play, the user's
                       labelled TSV/CSV, synthetic reviews
pairs.py               parallel text for the encoder-decoder: the user's TSV or aligned files,
                       the generated tasks, splits by key
dates.py, number_words.py
                       the generated pairs of the dates and numbers tasks
tinyshakespeare.txt.bz2  the default corpus (1.1 MB of text, checked by sha256)
"""

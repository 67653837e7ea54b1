"""Export: a run directory in another ecosystem's format (a face, like the CLI and the playground).

hf.py   `export_hf`: a Hugging Face GPT-2 directory (GPT2LMHeadModel + a fast tokenizer + a
        model card) that `transformers` loads offline
"""

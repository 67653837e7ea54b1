"""The lessons' own functions, imported by the notebooks and the CLI only.

by_hand.py         the averaging trick three ways, attention as a function, the column
                   convention: hand-written forms, tested equal to the library's modules
attention_maps.py  every layer's and head's attention weights over a text, and their heatmaps
curves.py          a run's training curves: the losses, the learning rate, the gradient norm,
                   tokens/s and the tracked scores against the step
real_data.py       where the real, human-labelled sets are (../shared/data/real beside the checkout)
drawing.py         matplotlib (the optional viz extra) for the pictures above
"""

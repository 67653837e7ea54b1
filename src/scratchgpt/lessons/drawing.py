"""Drawing with matplotlib, the optional `viz` extra: the one place the lessons' pictures get it."""

from ..errors import MissingExtra


def pyplot(what):
    """matplotlib.pyplot on its Agg backend (it writes image files and needs no display); without
    matplotlib, MissingExtra saying that `what` needs it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtra(f"{what} needs matplotlib: pip install 'scratchgpt[viz]'") from None
    return plt

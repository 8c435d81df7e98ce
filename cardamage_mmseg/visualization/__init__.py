from .overlay import add_legend, colorize, overlay, side_by_side

__all__ = ['add_legend', 'colorize', 'overlay', 'side_by_side']

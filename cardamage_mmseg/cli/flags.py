"""Command-line flags that every tool spells the same way, torch-free (the
tools parse them before they know whether a PyTorch model or an exported
one will run)."""
from argparse import ArgumentParser

#: ``--amp`` values (``engine.amp.AMP_CHOICES``, which needs torch)
AMP_CHOICES = ('auto', 'bf16', 'fp16')


def add_speed_args(parser: ArgumentParser) -> None:
    """``--amp [bf16|fp16]``, ``--compile``, ``--channels-last``."""
    parser.add_argument(
        '--amp', nargs='?', const='auto', choices=AMP_CHOICES,
        help='mixed precision: bf16 where the device has it, else fp16; or '
        'name the dtype')
    parser.add_argument(
        '--compile', action='store_true',
        help='torch.compile the network (first steps pay the compilation)')
    parser.add_argument(
        '--channels-last', action='store_true',
        help='channels_last model and inputs (convolution-heavy models)')

"""`python -m self_instruct.cli` is `self-instruct`."""

from . import main

main()

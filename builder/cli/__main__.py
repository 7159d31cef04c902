"""`python -m self_instruct.cli` is `self-instruct`."""

from self_instruct.cli import main

main()

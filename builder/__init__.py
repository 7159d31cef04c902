"""Self-Instruct (Wang et al., ACL 2023) as a Hugging Face-native pipeline."""

__version__ = "0.1.0"

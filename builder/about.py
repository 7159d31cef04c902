"""The version and the citations, below every other module: the card, the metric, the builder
and `--version` all read them, and the package's own `__init__` only re-exports."""

__version__ = "0.1.0"

# The paper, cited by the builder's DatasetInfo, the ROUGE-L metric module and the dataset card.
CITATION = """\
@inproceedings{wang-etal-2023-self-instruct,
    title = "Self-Instruct: Aligning Language Models with Self-Generated Instructions",
    author = "Wang, Yizhong and Kordi, Yeganeh and Mishra, Swaroop and Liu, Alisa and
      Smith, Noah A. and Khashabi, Daniel and Hajishirzi, Hannaneh",
    booktitle = "Proceedings of the 61st Annual Meeting of the Association for Computational
      Linguistics (Volume 1: Long Papers)",
    year = "2023",
    address = "Toronto, Canada",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/2023.acl-long.754",
    doi = "10.18653/v1/2023.acl-long.754",
    pages = "13484--13508",
}
"""

# ROUGE (Lin, 2004), cited by the ROUGE-L metric module; its card shows this text (a test checks).
ROUGE_CITATION = """\
@inproceedings{lin-2004-rouge,
    title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
    author = "Lin, Chin-Yew",
    booktitle = "Text Summarization Branches Out",
    month = jul,
    year = "2004",
    address = "Barcelona, Spain",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/W04-1013/",
    pages = "74--81",
}
"""

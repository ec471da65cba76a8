"""mtl: multi-task fine-tuning of one shared transformer encoder for NER, extractive QA and classification."""

__version__ = "0.1.0"

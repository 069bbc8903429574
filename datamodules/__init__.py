"""The data side: document sources, the BPE tokenizer, token pools and the LightningDataModule."""

"""The paper-figures notebook: its builder (``python -m experiments.notebook``), what a section
shows, and one-line exploration helpers."""

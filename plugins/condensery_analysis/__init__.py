"""condensery_analysis: what is in a distilled set (``condensery analyze``), and the multi-index task."""

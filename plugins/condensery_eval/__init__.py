"""Evaluators: the fair protocols a distilled set is judged by."""

"""Registers the ``seqmatch`` synthesizer (sequential subsets over a wrapped matcher)."""

from condensery import hookimpl

from .synthesizer import SeqMatchSynthesizer


@hookimpl
def register_synthesizers(register) -> None:
    register("seqmatch", SeqMatchSynthesizer)

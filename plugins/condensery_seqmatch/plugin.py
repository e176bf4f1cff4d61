"""Registers the ``seqmatch`` synthesizer (sequential subsets over a wrapped matcher), by reference."""

from condensery import hookimpl


@hookimpl
def register_synthesizers(register) -> None:
    register("seqmatch", "condensery_seqmatch.synthesizer:SeqMatchSynthesizer",
             options="condensery_seqmatch.options:SeqMatchOptions")

"""condensery-outsider: one component of every kind, written from docs/writing-plugins.md alone."""

#: modules other plugins may import: the capability our synthesizer asks of a matcher
PUBLIC_MODULES = ("capabilities",)

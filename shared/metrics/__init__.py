"""Evaluation protocols reimplemented from the official evaluators, each tested against vectors
produced by the official code (see each module's docstring for its protocol, source and quirks)."""

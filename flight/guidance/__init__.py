"""Descent guidance: phases, pessimistic-height profile, touchdown."""

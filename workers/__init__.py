"""Dramatiq transport: broker set-up and the actors that move work along."""

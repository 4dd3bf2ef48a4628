"""Registration plates, the domain's way: one normal form, and tying a read to a declaration.

normal_form.py   the one normal form every plate goes through (cameras, local
                 recognition, SEED records, officers, indicators), look-alike groups,
                 and the country shapes a text fits
association.py   the open pre-arrival records' plates, searchable by a noisy read

Cameras, the lane and the rules all import from here, so a plate compares the same
wherever it is compared.
"""

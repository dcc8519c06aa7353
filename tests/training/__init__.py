"""Tests of ccmct.training (a package so that test modules may share base names across folders)."""

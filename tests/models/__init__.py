"""Tests of ccmct.models (a package so that test modules may share base names across folders)."""

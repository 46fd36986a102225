"""Tests of real-name verification."""

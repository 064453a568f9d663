"""The side-by-side benchmark's project (benchmarks/side_by_side.py), also its only app."""

"""Closing the loop from production: feedback and corrections on traces, the shared-feedback
queue into evaluation datasets, sampled review with accuracy intervals, and online
evaluation of sampled traffic."""

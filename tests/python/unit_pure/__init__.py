"""Unit tests of zmqtt's pure-Python layer, run against a test double of the native module."""

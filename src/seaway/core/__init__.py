"""The pure decision core: no sockets, no files, no clock reads, no global randomness."""

"""Networking: the socket layer (socket.py, sock.py, scm.py) and the AF_UNIX family (unix.py)."""

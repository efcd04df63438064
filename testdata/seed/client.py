#!/usr/bin/env python3
# Faithful Python 3 port of the seed's image client (../../../shared/seed/,
# the "Python client send image" listing). The exchange is unchanged: one
# connection per image, "SIZE <n>" with no terminator, one recv(4096) per
# answer compared for exact equality, "BYE BYE " only after GOT IMAGE, no
# timeouts. Only the Python 2 -> 3 changes were made, the body was wrapped
# in a function so one process can send several files (one connection
# each, exactly as running the script once per file), and the server
# address comes from flags or the environment; README.md lists each change.
#
#   python3 client.py [--host 127.0.0.1] [--port 6666] FILE...
#   (or SEED_HOST, SEED_PORT; with no FILE it sends image.png as the seed)
#
# Exit status: 0 when every file's send returned (the seed prints
# "Image successfully send to server" only when GOT IMAGE came back, and
# returns quietly otherwise, so tests read the output); 1 when a send
# raised (the seed would die with the traceback; here the next file is
# still sent).

import os
import socket
import sys
import traceback

# --- added: server address from flags or the environment ---
HOST = os.environ.get('SEED_HOST', '127.0.0.1')
PORT = int(os.environ.get('SEED_PORT', '6666'))
files = []
_args = sys.argv[1:]
while _args:
    a = _args.pop(0)
    if a in ('--host', '--port') and _args:
        v = _args.pop(0)
        if a == '--host':
            HOST = v
        else:
            PORT = int(v)
    elif a.startswith('--host='):
        HOST = a[len('--host='):]
    elif a.startswith('--port='):
        PORT = int(a[len('--port='):])
    else:
        files.append(a)
if not files:
    files = ['image.png']
# --- end added ---


def send_image(image):  # added: the seed runs this body once, at top level
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server_address = (HOST, PORT)
    sock.connect(server_address)

    try:

        # open image
        myfile = open(image, 'rb')
        bytes = myfile.read()
        size = len(bytes)

        # send image size to server
        sock.sendall(("SIZE %s" % size).encode('ascii'))  # was: "SIZE %s" % size
        answer = sock.recv(4096)

        print('answer = %s' % answer.decode('latin-1'))  # was: print 'answer = %s' % answer

        # send image to server
        if answer == b'GOT SIZE':  # was: 'GOT SIZE'
            sock.sendall(bytes)

            # check what server send
            answer = sock.recv(4096)
            print('answer = %s' % answer.decode('latin-1'))

            if answer == b'GOT IMAGE' :  # was: 'GOT IMAGE'
                sock.sendall(b"BYE BYE ")  # was: "BYE BYE "
                print('Image successfully send to server')

        myfile.close()

    finally:
        sock.close()


# added: one connection per file, as running the seed once per file
failed = 0
for f in files:
    try:
        send_image(f)
    except Exception:
        traceback.print_exc()
        failed += 1
    sys.stdout.flush()
sys.exit(1 if failed else 0)

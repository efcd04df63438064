#!/usr/bin/env python2
# The seed's image client as published (Python 2, ../../../../shared/seed/), laid
# out from the article's flattened listing, with only the same added
# address/folder options as ../client.py. It is kept to check that the Python 3
# port behaves the same; run it with a Python 2.7 interpreter.

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
        sock.sendall("SIZE %s" % size)
        answer = sock.recv(4096)

        print 'answer = %s' % answer

        # send image to server
        if answer == 'GOT SIZE':
            sock.sendall(bytes)

            # check what server send
            answer = sock.recv(4096)
            print 'answer = %s' % answer

            if answer == 'GOT IMAGE' :
                sock.sendall("BYE BYE ")
                print 'Image successfully send to server'

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

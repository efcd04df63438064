#!/usr/bin/env python2
# The seed's image server as published (Python 2, ../../../../shared/seed/), laid
# out from the article's flattened listing, with only the same added
# address/folder options as ../server.py. It is kept to check that the Python 3
# port behaves the same; run it with a Python 2.7 interpreter.

import os
import socket, select
import sys

# --- added: address and output folder from flags or the environment ---
def _opt(name, env, default):
    flag = '--' + name
    for i, a in enumerate(sys.argv[1:]):
        if a == flag and i + 2 < len(sys.argv):
            return sys.argv[i + 2]
        if a.startswith(flag + '='):
            return a[len(flag) + 1:]
    return os.environ.get(env, default)

HOST = _opt('host', 'SEED_HOST', '127.0.0.1')
PORT = int(_opt('port', 'SEED_PORT', '6666'))
OUTDIR = _opt('dir', 'SEED_DIR', '.')
# --- end added ---

imgcounter = 1
basename = os.path.join(OUTDIR, "image%s.png")  # was: "image%s.png"

connected_clients_sockets = []

server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server_socket.bind((HOST, PORT))
server_socket.listen(10)

connected_clients_sockets.append(server_socket)
print('listening on %s:%d' % server_socket.getsockname()[:2]); sys.stdout.flush()  # added

while True:

    read_sockets, write_sockets, error_sockets = select.select(connected_clients_sockets, [], [])

    for sock in read_sockets:

        if sock == server_socket:

            sockfd, client_address = server_socket.accept()
            connected_clients_sockets.append(sockfd)

        else:
            try:

                data = sock.recv(4096)
                txt = str(data)

                if data:

                    if data.startswith('SIZE'):
                        tmp = txt.split()
                        size = int(tmp[1])

                        print 'got size'

                        sock.sendall("GOT SIZE")

                    elif data.startswith('BYE'):
                        sock.shutdown()  # sic: TypeError, caught below

                    else :

                        myfile = open(basename % imgcounter, 'wb')
                        myfile.write(data)

                        data = sock.recv(40960000)
                        if not data:
                            myfile.close()
                            break
                        myfile.write(data)
                        myfile.close()

                        sock.sendall("GOT IMAGE")
                        sock.shutdown()  # sic: TypeError, caught below
            except:
                sock.close()
                connected_clients_sockets.remove(sock)
                continue
        imgcounter += 1
server_socket.close()

"""A one-shot Lambda Runtime API on loopback: hands the function one event, prints the response it
posts back (or its init/invocation error) and exits.

usage: runtime_api.py PORT EVENT_JSON_FILE READY_FILE
Writes READY_FILE once listening; gives up after 60 s.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

EVENT = json.load(open(sys.argv[2], encoding="utf-8"))
served = []


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # /runtime/invocation/next
        if served:  # one event only: the next poll waits until the server stops
            time.sleep(30)
            return
        served.append(True)
        body = json.dumps(EVENT).encode()
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", "req-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                         "arn:aws:lambda:us-east-1:123456789012:function:smoke")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # .../response, .../error, /runtime/init/error
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        kind = self.path.rsplit("/", 1)[-1]
        print(json.dumps({"kind": kind, "body": data.decode()}), flush=True)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        threading.Thread(target=server.shutdown).start()


server = HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
open(sys.argv[3], "w").close()
watchdog = threading.Timer(60, server.shutdown)
watchdog.daemon = True
watchdog.start()
server.serve_forever()

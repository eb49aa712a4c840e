"""A stand-in model server for the deployment tests: the standard library only, no model.

    python3 server.py PORT [--sick]

GET /health answers 200 (503 with --sick: a server whose health check never
passes); GET / answers {"model": $BACKEND_MODEL_NAME, "cwd": ...} in JSON.
It reads `answer.txt` from its working directory (the model folder) when
there is one, so a test can see that the code folder was staged.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT = int(sys.argv[1])
SICK = "--sick" in sys.argv


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            self.send_response(503 if SICK else 200)
            self.end_headers()
            return
        answer = open("answer.txt").read().strip() if os.path.exists("answer.txt") else ""
        body = json.dumps({"model": os.environ.get("BACKEND_MODEL_NAME"), "answer": answer}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


print(f"serving {os.environ.get('BACKEND_MODEL_NAME')} on {PORT}", flush=True)
HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()

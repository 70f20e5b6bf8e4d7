#!/usr/bin/env python3
"""A local webhook receiver to try perfwatch's alerts with: prints each alert it is sent.

    python3 scripts/webhook-receiver.py --port 9095 [--jsonl notifications.jsonl]

and in perfwatch.yaml:

    alerts:
      receivers:
        - {name: local, url: "http://127.0.0.1:9095/"}

It answers every POST with 200 and prints one line per alert (status, name, target and operation,
summary); --jsonl also appends each request's body, as received, as one line of a file.
"""
import argparse
import http.server
import json


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9095)
    parser.add_argument("--jsonl", help="append each notification's JSON body to this file")
    args = parser.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if args.jsonl:
                with open(args.jsonl, "ab") as f:
                    f.write(body.replace(b"\n", b" ") + b"\n")
            try:
                alerts = json.loads(body).get("alerts", [])
            except (ValueError, AttributeError):
                alerts = []
            for alert in alerts:
                labels, annotations = alert.get("labels", {}), alert.get("annotations", {})
                subject = "/".join(labels[k] for k in ("target", "operation", "cache") if k in labels)
                print(f"{alert.get('status', '?'):8} {labels.get('alertname', '?')} {subject}: "
                      f"{annotations.get('summary', '')}", flush=True)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_):
            pass

    print(f"listening on http://127.0.0.1:{args.port}/", flush=True)
    http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()

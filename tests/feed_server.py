"""A small news site on 127.0.0.1 for the feed tests: RSS and Atom feeds, article
pages, broken feeds and pages, robots.txt, ETag / Last-Modified. No network."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROBOTS = "User-agent: *\nDisallow: /private/\n"

PAGE = """<!doctype html><html><head><title>{title}</title>
<meta property="og:site_name" content="Harbour Herald"></head><body>
<nav>Home | World | Sport</nav><article><h1>{title}</h1>
{paragraphs}
</article><footer>Subscribe to our newsletter</footer></body></html>"""


def page(title: str, sentences: list[str]) -> str:
    return PAGE.format(title=title, paragraphs="\n".join(f"<p>{s}</p>" for s in sentences))


def rss(base: str, items: list[dict]) -> str:
    body = "".join(
        f"<item><title>{i['title']}</title><link>{base}{i['path']}</link><guid>{i['guid']}</guid>"
        f"<pubDate>{i['date']}</pubDate><description>{i.get('summary', '')}</description></item>"
        for i in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Harbour Herald</title>'
        f"<link>{base}/</link><description>News</description>{body}</channel></rss>"
    )


def atom(base: str, entries: list[dict]) -> str:
    body = "".join(
        f'<entry><title>{e["title"]}</title><link href="{base}{e["path"]}"/><id>{e["guid"]}</id>'
        f"<updated>{e['date']}</updated><summary>{e.get('summary', '')}</summary></entry>"
        for e in entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Lighthouse Log</title><id>{base}/atom</id><updated>2023-11-02T10:00:00Z</updated>{body}</feed>"
    )


class FeedSite:
    """`routes` maps a path to (status, content type, body); what is asked is logged
    in `requests` as (path, request headers)."""

    def __init__(self):
        self.routes: dict[str, tuple[int, str, str]] = {"/robots.txt": (200, "text/plain", ROBOTS)}
        self.etags: dict[str, str] = {}
        self.requests: list[tuple[str, dict]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                site.requests.append((self.path, dict(self.headers)))
                status, kind, body = site.routes.get(self.path, (404, "text/html", "<h1>Not found</h1>"))
                etag = site.etags.get(self.path)
                if etag and self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                if etag:
                    self.send_header("ETag", etag)
                    self.send_header("Last-Modified", "Thu, 02 Nov 2023 10:00:00 GMT")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FeedSite:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def asked(self, path: str) -> int:
        return sum(p == path for p, _ in self.requests)

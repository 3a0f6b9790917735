"""Reads an HTML document (Chromium's --dump-dom) on stdin and prints, as JSON, the text of
every element that has an id: {"id": "text", ...}. Only the standard library."""
import json
import sys
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Ids(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.open = []  # (tag, id or None, collected text)
        self.found = {}

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            return
        self.open.append((tag, dict(attrs).get("id"), []))

    def handle_endtag(self, tag):
        while self.open:
            open_tag, element_id, text = self.open.pop()
            joined = "".join(text)
            if self.open:
                self.open[-1][2].append(joined)
            if element_id is not None:
                self.found[element_id] = " ".join(joined.split())
            if open_tag == tag:
                break

    def handle_data(self, data):
        if self.open:
            self.open[-1][2].append(data)


parser = Ids()
parser.feed(sys.stdin.read())
parser.close()
json.dump(parser.found, sys.stdout, ensure_ascii=False)

"""The demo's downloadable files: small ones generated into the downloads storage, so a demo
customer who buys a digital product can download it (``orders.downloads``)."""

from __future__ import annotations

import io
import zipfile

from django.core.files.base import ContentFile

from orders import downloads
from orders.demo import DEMO_CATALOG


def _pdf(title: str, lines: list[str]) -> bytes:
    """A one-page PDF showing ``title`` and ``lines`` (no library needed)."""

    def text(value: str) -> str:
        return value.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    rows = [f"BT /F1 20 Tf 72 740 Td ({text(title)}) Tj ET"]
    rows += [
        f"BT /F1 12 Tf 72 {700 - 18 * n} Td ({text(line)}) Tj ET" for n, line in enumerate(lines)
    ]
    stream = "\n".join(rows).encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def _stickers() -> bytes:
    """A zip of three printable SVG stickers."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, colour, word in (("idempotent", "#2e55c9", "idempotent"),
                                   ("at-least-once", "#1c7c47", "at least once"),
                                   ("refetch", "#b3261e", "re-fetch!")):  # fmt: skip
            # A fixed date: the same file each time it is made.
            info = zipfile.ZipInfo(f"{name}.svg", date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(
                info,
                '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="120">'
                f'<rect width="300" height="120" rx="60" fill="{colour}"/>'
                '<text x="150" y="72" font-size="32" font-family="sans-serif" fill="#fff" '
                f'text-anchor="middle">{word}</text></svg>',
            )
    return out.getvalue()


def demo_file(name: str) -> bytes:
    if name.endswith(".zip"):
        return _stickers()
    entry = next(e for e in DEMO_CATALOG if e.get("download") == name)
    return _pdf(entry["name"], [entry["description"], "", "A demo file from the shop's demo."])


def demo_downloads_write() -> int:
    """Write each demo product's file into the downloads storage unless it is there; return
    how many were written."""
    storage = downloads.storage()
    written = 0
    for entry in DEMO_CATALOG:
        name = entry.get("download")
        if name and not storage.exists(name):
            storage.save(name, ContentFile(demo_file(name)))
            written += 1
    return written

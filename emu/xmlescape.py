"""XML escaping for the SVG and gdb's XML documents: xml.sax.saxutils' escape and quoteattr, with the same
results, without importing xml.sax.saxutils (which imports urllib.request, http.client and ssl: some 50 ms
of every faultlab start-up, for three string replacements)."""


def escape(data):
    """&, < and > as entities (xml.sax.saxutils.escape)."""
    return data.replace('&', '&amp;').replace('>', '&gt;').replace('<', '&lt;')


def quoteattr(data):
    """An attribute value, escaped and quoted (xml.sax.saxutils.quoteattr): newline, carriage return and
    tab as character references; double quotes unless the value has one and no single quote."""
    data = escape(data).replace('\n', '&#10;').replace('\r', '&#13;').replace('\t', '&#9;')
    if '"' in data:
        if "'" in data:
            return '"%s"' % data.replace('"', '&quot;')
        return "'%s'" % data
    return '"%s"' % data

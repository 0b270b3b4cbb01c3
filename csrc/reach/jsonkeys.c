/* Top-level keys of a JSON object text (see jsonkeys.h). */
#include "reach/jsonkeys.h"

#include <string.h>

static const char *skip_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at the opening quote; returns the byte after the closing one, or NULL. */
static const char *skip_string(const char *p, const char *e)
{
    for (p++; p < e; p++) {
        const char *q = memchr(p, '"', (size_t)(e - p));
        if (!q)
            return NULL;
        /* a quote preceded by an odd number of backslashes is escaped */
        size_t bs = 0;
        while (q - bs > p && q[-1 - (ptrdiff_t)bs] == '\\')
            bs++;
        if (bs % 2 == 0)
            return q + 1;
        p = q;
    }
    return NULL;
}

/* Skips one value; for an array, *count = its elements. Returns the byte after it, or NULL. */
static const char *skip_value(const char *p, const char *e, long *count)
{
    *count = -1;
    if (p >= e)
        return NULL;
    if (*p == '"')
        return skip_string(p, e);
    if (*p != '{' && *p != '[') {
        while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
            p++;
        return p;
    }
    int array = *p == '[';
    long n = 0;
    size_t depth = 0;
    if (array) {
        const char *q = skip_ws(p + 1, e);
        n = q < e && *q == ']' ? 0 : 1;
    }
    for (; p < e; p++) {
        switch (*p) {
        case '"':
            p = skip_string(p, e);
            if (!p)
                return NULL;
            p--;
            break;
        case '{': case '[':
            depth++;
            break;
        case '}': case ']':
            if (--depth == 0) {
                if (array)
                    *count = n;
                return p + 1;
            }
            break;
        case ',':
            if (depth == 1)
                n++;
            break;
        default:
            break;
        }
    }
    return NULL;
}

int jsonkeys_scan(const char *text, size_t len, jsonkeys_fn fn, void *ud, const char **why)
{
    const char *p = text, *e = text + len;
    if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) /* a UTF-8 byte order mark */
        p += 3;
    p = skip_ws(p, e);
    if (p >= e || *p != '{') {
        *why = "top level is not a JSON object";
        return -1;
    }
    p = skip_ws(p + 1, e);
    if (p < e && *p == '}')
        goto end;
    for (;;) {
        if (p >= e || *p != '"')
            goto broken;
        const char *k = p + 1, *q = skip_string(p, e);
        if (!q)
            goto broken;
        if (memchr(k, '\\', (size_t)(q - 1 - k))) {
            *why = "a top-level key holds an escape";
            return -1;
        }
        p = skip_ws(q, e);
        if (p >= e || *p != ':')
            goto broken;
        long count;
        p = skip_value(skip_ws(p + 1, e), e, &count);
        if (!p)
            goto broken;
        fn(ud, k, (size_t)(q - 1 - k), count);
        p = skip_ws(p, e);
        if (p < e && *p == ',') {
            p = skip_ws(p + 1, e);
            continue;
        }
        if (p < e && *p == '}')
            break;
        goto broken;
    }
end:
    /* what follows the object is the decoder's to judge (lua-cjson stops at a NUL byte) */
    return 0;
broken:
    *why = "malformed JSON";
    return -1;
}

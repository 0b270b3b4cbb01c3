/* The top-level keys of a JSON object text, without decoding it.
 *
 * A snapshot folder is read one describe file at a time, when the loader reaches the kind it
 * holds (so the whole snapshot is never decoded at once): to know which file holds which kind,
 * the reader needs only each file's top-level keys, and for arrays their lengths.
 *
 * Contract: `jsonkeys_scan` walks `text` (len bytes, no NUL needed) as far as the structure
 * (objects, arrays, strings and their escapes) goes, without checking scalars: it is not a
 * validator (the decoder that reads the file later is). For each top-level member it calls
 * `fn(ud, key, keylen, count)`, count being the number of elements of an array value or -1 for
 * any other value. Returns 0, or -1 when the text is not one object or a key holds an escape
 * (a key the caller cannot compare as bytes); then *why says which. Nothing is allocated. */
#ifndef AWSNET_REACH_JSONKEYS_H
#define AWSNET_REACH_JSONKEYS_H

#include <stddef.h>

typedef void (*jsonkeys_fn)(void *ud, const char *key, size_t keylen, long count);
int jsonkeys_scan(const char *text, size_t len, jsonkeys_fn fn, void *ud, const char **why);

#endif

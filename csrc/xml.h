/* xml: XML text to Lua tables (expat) for awsnet.core.
 *
 * Adds `core.xml.parse(text [, list_names])` -> root name, value; or nil, "xml", message.
 * An element with child elements becomes a table; one without becomes its text (a string).
 * Children named in the set `list_names` (e.g. {item=true, member=true}) are appended to the
 * parent's array part; any other child is stored under its name, and a name that repeats turns
 * into an array of the values in document order. Attributes, comments and processing
 * instructions are dropped; a DOCTYPE is refused; nesting deeper than 200 is refused.
 * expat's callbacks only record events in C memory; Lua tables are built after parsing. */
#ifndef AWSNET_XML_H
#define AWSNET_XML_H

#include <lua.h>

void xml_open(lua_State *L);

#endif

/* awsnet.core: builds the module table and lets each primitive register itself. */
#include "core.h"
#include "dns.h"
#include "file.h"
#include "http.h"
#include "httpd.h"
#include "mariadb.h"
#include "process.h"
#include "queryform.h"
#include "reach/reach.h"
#include "shapexml.h"
#include "sigv4.h"
#include "xml.h"

/* One line per primitive, in the order their headers are included. */
static const core_part_open parts[] = {
    dns_open,
    file_open,
    http_open,
    httpd_open,
    mariadb_open,
    process_open,
    queryform_open,
    reach_open,
    shapexml_open,
    sigv4_open,
    xml_open,
    NULL
};

__attribute__((visibility("default"))) int luaopen_awsnet_core(lua_State *L);

int luaopen_awsnet_core(lua_State *L)
{
    lua_newtable(L);
    lua_pushliteral(L, AWSNET_VERSION);
    lua_setfield(L, -2, "VERSION");
    for (const core_part_open *open = parts; *open != NULL; open++)
        (*open)(L);
    return 1;
}

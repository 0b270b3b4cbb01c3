rockspec_format = "3.0"
package = "awsnet"
version = "scm-1"
source = {
  url = "git+file:///dev/null",
}
description = {
  summary = "Build, prove and check AWS network paths from Lua",
  detailed = [[
    SigV4-signed AWS calls over libcurl/OpenSSL with credentials for several accounts, a static
    evaluator of routes, Transit Gateway route tables, security groups and network ACLs,
    DNS checks over c-ares, a MariaDB/MySQL client over libmariadb, and a local two-account AWS
    sandbox.
  ]],
  license = "MIT",
}
-- Debian's lua-cjson and lua-argparse packages have no rock manifest: declare them with
-- tools/luarocks-config.lua (`make rock`), or install with --deps-mode=none.
dependencies = {
  "lua >= 5.4",
  "lua-cjson",
  "argparse",
}
external_dependencies = {
  -- Debian's multiarch include dirs defeat header probes; libraries are found reliably. What
  -- LuaRocks finds (<NAME>_INCDIR, <NAME>_LIBDIR: the prefix's include dir, the library's dir) goes
  -- to the Makefile, which adds them as -I/-L (and <MARIADB_INCDIR>/mariadb for mysql.h).
  CURL = { library = "curl" },
  OPENSSL = { library = "ssl" },
  MARIADB = { library = "mariadb" },
  EXPAT = { library = "expat" },
  CARES = { library = "cares" },
}
build = {
  type = "make",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUA = "$(LUA)",
    CURL_INCDIR = "$(CURL_INCDIR)", CURL_LIBDIR = "$(CURL_LIBDIR)",
    OPENSSL_INCDIR = "$(OPENSSL_INCDIR)", OPENSSL_LIBDIR = "$(OPENSSL_LIBDIR)",
    MARIADB_INCDIR = "$(MARIADB_INCDIR)", MARIADB_LIBDIR = "$(MARIADB_LIBDIR)",
    EXPAT_INCDIR = "$(EXPAT_INCDIR)", EXPAT_LIBDIR = "$(EXPAT_LIBDIR)",
    CARES_INCDIR = "$(CARES_INCDIR)", CARES_LIBDIR = "$(CARES_LIBDIR)",
    -- no WERROR: a user's build does not stop on a warning of a newer compiler (see Makefile)
  },
  install_variables = {
    PREFIX = "$(PREFIX)",
    LUADIR = "$(LUADIR)",
    LIBDIR = "$(LIBDIR)",
    BINDIR = "$(BINDIR)",
  },
}

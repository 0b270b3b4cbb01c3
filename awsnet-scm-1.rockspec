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
dependencies = {
  "lua >= 5.4",
  "lua-cjson",
}
external_dependencies = {
  -- Debian's multiarch include dirs defeat header probes; libraries are found reliably.
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
  },
  install_variables = {
    PREFIX = "$(PREFIX)",
    LUADIR = "$(LUADIR)",
    LIBDIR = "$(LIBDIR)",
    BINDIR = "$(BINDIR)",
  },
}

-- LuaRocks configuration for building awsnet on Debian with Debian's Lua packages.
-- Used as LUAROCKS_CONFIG=tools/luarocks-config.lua by `make rock` and `make dist`, with
-- `luarocks --lua-version 5.4 ...` (the Lua version stays a command-line setting: set here, it
-- would not change the interpreter LuaRocks picked before reading this file).
--
-- LUAROCKS_CONFIG takes the place of the user's ~/.luarocks/config-5.4.lua; the system's
-- /etc/luarocks/config-5.4.lua (rocks trees, external deps dirs) is still read first.
--
-- Debian's lua-cjson and lua-argparse install their modules for Lua 5.4 but no rock manifest:
-- without this LuaRocks reports them as "Missing dependencies" and asks a rocks server for them.
-- The versions are those of Debian 12's packages (lua-cjson 2.1.0, lua-argparse 0.7.1).
rocks_provided = {
  ["lua-cjson"] = "2.1.0-1",
  argparse = "0.7.1-1",
}

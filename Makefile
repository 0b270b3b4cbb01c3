# awsnet — build, install, test, bench, demo, deps.
# Variables follow what LuaRocks passes to a "make" build (PREFIX, LUADIR, LIBDIR, BINDIR, CFLAGS,
# LIBFLAG, LUA_INCDIR), so `luarocks make` and a plain `make install` install the same files.
# What LuaRocks finds for the rockspec's external_dependencies comes as <NAME>_INCDIR/<NAME>_LIBDIR
# (CURL, OPENSSL, MARIADB, EXPAT, CARES) and is added as -I/-L before what pkg-config says.

LUA        ?= lua5.4
PREFIX     ?= /usr/local
LUADIR     ?= $(PREFIX)/share/lua/5.4
LIBDIR     ?= $(PREFIX)/lib/lua/5.4
BINDIR     ?= $(PREFIX)/bin
LUA_INCDIR ?= /usr/include/lua5.4
CC         ?= cc
CFLAGS     ?= -O2 -g
LIBFLAG    ?= -shared
BUILD      ?= build

# From LuaRocks' external_dependencies (empty for a plain make: pkg-config alone then).
# LuaRocks says <prefix>/include for MARIADB_INCDIR; Debian's mysql.h is in its mariadb/ subdir.
# (uniq: each dir once, in first-seen order.)
uniq       = $(if $1,$(firstword $1) $(call uniq,$(filter-out $(firstword $1),$1)))
DEP_NAMES := CURL OPENSSL MARIADB EXPAT CARES
DEP_CFLAGS = $(addprefix -I,$(call uniq,$(foreach d,$(DEP_NAMES),$($(d)_INCDIR)) $(addsuffix /mariadb,$(MARIADB_INCDIR))))
DEP_LIBS   = $(addprefix -L,$(call uniq,$(foreach d,$(DEP_NAMES),$($(d)_LIBDIR))))

PKGS      := libcurl openssl libmariadb expat libcares
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcurl -lssl -lcrypto -lmariadb -lexpat -lcares)
# -Werror only with WERROR=1, which the development targets set (test, check, bench, soak: a
# target-specific value that the `build` they depend on inherits; `check` passes it to its
# sub-make), so CI (`make test`) fails on any warning. A plain `make`/`make install`, `make demo`,
# `make rock` and LuaRocks builds of the rock leave it unset: a newer compiler's new warning does
# not stop a user's build. `make WERROR=1` asks for it by hand; `make test WERROR=0` drops it.
# An existing $(BUILD) is not rebuilt for a change of WERROR alone (CI builds from a clean clone).
WERROR    ?=
WARN       = -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror) -Wshadow -Wpointer-arith -Wstrict-prototypes \
             -Wmissing-prototypes -Wformat=2 -Wvla
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(WARN) -I$(LUA_INCDIR) -Icsrc $(DEP_CFLAGS) $(PKG_CFLAGS) \
             $(CFLAGS)

SRC  := $(sort $(wildcard csrc/*.c csrc/reach/*.c))
OBJ   = $(SRC:%.c=$(BUILD)/obj/%.o)
CORE  = $(BUILD)/awsnet/core.so

# The specs keep botocore's models' cache (awsnet.aws.model) in the build folder, never in $HOME.
BUSTED = AWSNET_MODELS_CACHE=$(CURDIR)/$(BUILD)/models-cache $(LUA) /usr/bin/busted
SAN_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

.PHONY: all build install uninstall deps test check lint bench demo soak fuzz clean rock dist
all: build
build: $(CORE)

# The development targets build with -Werror (see WARN).
test check bench soak: WERROR = 1

$(CORE): $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) $(ALL_CFLAGS) -o $@ $(OBJ) $(DEP_LIBS) $(PKG_LIBS) $(LDFLAGS)

$(BUILD)/obj/%.o: %.c $(wildcard csrc/*.h csrc/reach/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Only lua/awsnet/**/*.lua and *.py (the Python the sandbox runs), the core and bin/awsnet: never a
# report, picture or state file the demo leaves in the checkout (tests/packaging_spec.lua checks).
install: $(CORE)
	install -d $(DESTDIR)$(LUADIR)/awsnet $(DESTDIR)$(LIBDIR)/awsnet $(DESTDIR)$(BINDIR)
	cd lua && find awsnet -type f \( -name '*.lua' -o -name '*.py' \) -exec install -D -m 644 {} $(DESTDIR)$(LUADIR)/{} \;
	install -m 755 $(CORE) $(DESTDIR)$(LIBDIR)/awsnet/core.so
	install -m 755 bin/awsnet $(DESTDIR)$(BINDIR)/awsnet

uninstall:
	rm -rf $(DESTDIR)$(LUADIR)/awsnet $(DESTDIR)$(LIBDIR)/awsnet $(DESTDIR)$(BINDIR)/awsnet

# Debian packages for the build, the tests, the benchmarks and the demo (apt only when missing).
deps:
	@sh tools/deps.sh

lint:
	luacheck -q $(wildcard lua bin tests bench examples)

# The API reference from the modules' doc comments (config.ld; Debian package lua-ldoc):
# build/doc/index.html. Any LDoc warning fails it (tests/doc_spec.lua checks the same).
.PHONY: doc
doc:
	rm -rf build/doc
	ldoc --fatalwarnings .

# The tests run against the freshly built core in $(BUILD); a test that needs a service starts it.
test: deps build
	luacheck -q $(wildcard lua bin tests bench examples)
	$(BUSTED)

# The same suite with the C core built under ASan+UBSan; any report fails the run.
check: deps
	$(MAKE) WERROR=$(WERROR) BUILD=build-san CFLAGS="$(SAN_CFLAGS)" LDFLAGS="-fsanitize=address,undefined" build
	AWSNET_BUILD=build-san AWSNET_SANITIZED=1 \
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	AWSNET_MODELS_CACHE=$(CURDIR)/build-san/models-cache $(LUA) /usr/bin/busted

# The benchmarks' C peers (bench/*/c_peer.c): libmariadb alone, without Lua, side by side.
$(BUILD)/bench/insert_c_peer: bench/insert/c_peer.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) $(shell pkg-config --cflags libmariadb) $(CFLAGS) -o $@ $< \
		$(shell pkg-config --libs libmariadb)

# Each bench/*/run.lua measures a missed target's figure once more and exits 1 if it is still
# missed; every benchmark runs, and `make bench` fails if any did (it is not part of `make test`).
bench: deps build $(BUILD)/bench/insert_c_peer
	@failed=""; for b in bench/*/run.lua; do $(LUA) $$b || failed="$$failed $$b"; done; \
	if [ -n "$$failed" ]; then echo "make bench: targets missed in:$$failed" >&2; exit 1; fi

demo: deps build
	$(LUA) bin/awsnet demo

# The reliability specs of the scenario, many more runs than `make test` does (20 seeds under
# faults, 10 SIGKILLs at random steps; AWSNET_SOAK_RUNS=N to change), and the evaluator against
# the kernel on 1,000 seeded cases of the network twin (AWSNET_TWIN_CASES=N to change; needs root,
# AWSNET_TWIN=off skips it).
soak: deps build
	AWSNET_SOAK_RUNS=$${AWSNET_SOAK_RUNS:-20} $(BUSTED) tests/scenario_reliability_spec.lua
	AWSNET_TWIN_CASES=$${AWSNET_TWIN_CASES:-1000} $(BUSTED) tests/twin_differential_spec.lua

fuzz:
	@sh tools/fuzz.sh

# `luarocks make` of this checkout, offline: tools/luarocks-config.lua declares Debian's lua-cjson
# and lua-argparse as provided rocks, so there is no "Missing dependencies" and no rocks server
# to ask. ROCK_TREE=DIR installs into that tree instead of LuaRocks' default one.
LUAROCKS ?= luarocks --lua-version 5.4
ROCK_ENV  = LUAROCKS_CONFIG=$(CURDIR)/tools/luarocks-config.lua
rock:
	$(ROCK_ENV) $(LUAROCKS) make awsnet-scm-1.rockspec $(if $(ROCK_TREE),--tree $(ROCK_TREE))

# $(DIST)/awsnet-V.tar.gz (the source files, not what builds or the demo leave) and
# $(DIST)/awsnet-V-1.src.rock (rockspecs/awsnet-V-1.rockspec packed with it); V: csrc/core.h.
DIST ?= dist
dist:
	@sh tools/dist.sh $(DIST)

clean:
	rm -rf build build-san build-fuzz

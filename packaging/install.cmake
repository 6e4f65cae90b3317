# Installation layout and the Debian package (issue 8). Included at the end of
# the top-level CMakeLists.txt.
#
#   cmake -S . -B build && cmake --build build -j && (cd build && cpack -G DEB)
#
# builds build/sqlbak_<version>_<arch>.deb. `cmake --install build` installs
# the same files; DESTDIR=/some/root stages them instead.
#
# Layout: the package puts everything below /usr (CPACK_PACKAGING_INSTALL_PREFIX),
# whatever CMAKE_INSTALL_PREFIX says; `cmake --install` uses CMAKE_INSTALL_PREFIX
# (/usr/local unless set), where systemd finds units, sysusers.d and tmpfiles.d
# files as well. The configuration always goes to /etc/sqlbak: that is where
# sqlbakd and sqlbakctl look by default, and the unit names it.

include(GNUInstallDirs)

set(SQLBAK_PACKAGING_DIR ${PROJECT_SOURCE_DIR}/packaging)
set(SQLBAK_PACKAGING_BINARY_DIR ${PROJECT_BINARY_DIR}/packaging)
set(SQLBAK_DOC_DIR ${CMAKE_INSTALL_DATADIR}/doc/sqlbak)
set(SQLBAK_CONFIG_DIR /etc/sqlbak)

# Writes FILE only when CONTENT differs, so that an unchanged file keeps its
# time stamp; SOURCE re-runs the configuration when it changes.
function(sqlbak_generate_file file content source)
  set(old "")
  if(EXISTS ${file})
    file(READ ${file} old)
  endif()
  if(NOT old STREQUAL content)
    file(WRITE ${file} "${content}")
  endif()
  set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${source})
endfunction()

# Programs. sqlbakctl is for people (bin), sqlbakd is started by systemd (sbin).
install(TARGETS sqlbakd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(TARGETS sqlbakctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# systemd. The unit names /usr/sbin/sqlbakd; the installed copy names the
# binary where this installation puts it, so it is written at install time,
# when the prefix is known (cpack installs with the prefix /usr; `cmake
# --install --prefix DIR` with DIR).
set(SQLBAK_UNIT_SOURCE ${PROJECT_SOURCE_DIR}/systemd/sqlbakd.service)
set(SQLBAK_UNIT_STAGED ${SQLBAK_PACKAGING_BINARY_DIR}/unit/sqlbakd.service)
if(IS_ABSOLUTE "${CMAKE_INSTALL_SBINDIR}")
  set(SQLBAK_SBIN_AT_INSTALL "${CMAKE_INSTALL_SBINDIR}")
else()
  set(SQLBAK_SBIN_AT_INSTALL "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SBINDIR}")
endif()
install(CODE "
  file(READ \"${SQLBAK_UNIT_SOURCE}\" unit)
  string(REPLACE \"/usr/sbin/sqlbakd\" \"${SQLBAK_SBIN_AT_INSTALL}/sqlbakd\" unit \"\${unit}\")
  file(WRITE \"${SQLBAK_UNIT_STAGED}\" \"\${unit}\")
  file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES \"${SQLBAK_UNIT_STAGED}\")
")
install(FILES ${PROJECT_SOURCE_DIR}/systemd/sqlbak.sysusers
  DESTINATION lib/sysusers.d RENAME sqlbak.conf)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/sqlbak.tmpfiles
  DESTINATION lib/tmpfiles.d RENAME sqlbak.conf)

# The configuration: a conffile in the package (packaging/debian/conffiles).
# 0640: it may name secret files and hold webhook URLs; postinst gives it to
# group sqlbak so that the daemon reads it.
install(FILES ${PROJECT_SOURCE_DIR}/etc/sqlbak.yaml DESTINATION ${SQLBAK_CONFIG_DIR}
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)

# Man pages, compressed as Debian policy asks (gzip -n: no name or time
# stamp, so that the package is reproducible).
find_program(SQLBAK_GZIP gzip)
set(SQLBAK_MAN_PAGES sqlbakctl.1 sqlbak.yaml.5 sqlbakd.8)
set(SQLBAK_MAN_OUTPUTS)
foreach(page IN LISTS SQLBAK_MAN_PAGES)
  string(REGEX REPLACE "^.*\\.([0-9])$" "\\1" section ${page})
  set(source ${SQLBAK_PACKAGING_DIR}/man/${page})
  if(SQLBAK_GZIP)
    set(output ${SQLBAK_PACKAGING_BINARY_DIR}/man/${page}.gz)
    add_custom_command(OUTPUT ${output}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${SQLBAK_PACKAGING_BINARY_DIR}/man
      COMMAND ${SQLBAK_GZIP} -9nc ${source} > ${output}
      DEPENDS ${source}
      COMMENT "Compressing man page ${page}"
      VERBATIM)
    list(APPEND SQLBAK_MAN_OUTPUTS ${output})
    install(FILES ${output} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  else()
    install(FILES ${source} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  endif()
endforeach()
if(SQLBAK_MAN_OUTPUTS)
  add_custom_target(sqlbak_man_pages ALL DEPENDS ${SQLBAK_MAN_OUTPUTS})
endif()

install(FILES ${SQLBAK_PACKAGING_DIR}/bash-completion/sqlbakctl
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)

# Documentation. docs/ keeps its name so that the README's links work.
file(GLOB SQLBAK_DOCS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${SQLBAK_PACKAGING_DIR}/journald.md
  DESTINATION ${SQLBAK_DOC_DIR})
install(FILES ${SQLBAK_DOCS} DESTINATION ${SQLBAK_DOC_DIR}/docs)
# The Grafana dashboard, when the source tree has it (OPTIONAL: no error without).
install(FILES ${SQLBAK_PACKAGING_DIR}/grafana-dashboard.json DESTINATION ${SQLBAK_DOC_DIR} OPTIONAL)

# The copyright file: the header from packaging/debian/copyright, and the
# project's licence text when the source tree has one.
file(READ ${SQLBAK_PACKAGING_DIR}/debian/copyright SQLBAK_COPYRIGHT)
foreach(candidate LICENSE LICENSE.md LICENSE.txt COPYING)
  if(EXISTS ${PROJECT_SOURCE_DIR}/${candidate})
    file(READ ${PROJECT_SOURCE_DIR}/${candidate} SQLBAK_LICENSE_TEXT)
    string(APPEND SQLBAK_COPYRIGHT "\nThe licence, as in the source tree's ${candidate}:\n\n${SQLBAK_LICENSE_TEXT}")
    set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
      ${PROJECT_SOURCE_DIR}/${candidate})
    break()
  endif()
endforeach()
sqlbak_generate_file(${SQLBAK_PACKAGING_BINARY_DIR}/copyright "${SQLBAK_COPYRIGHT}"
  ${SQLBAK_PACKAGING_DIR}/debian/copyright)
install(FILES ${SQLBAK_PACKAGING_BINARY_DIR}/copyright DESTINATION ${SQLBAK_DOC_DIR})

# ---------------------------------------------------------------------------
# CPack: the Debian package.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sqlbak)
set(CPACK_PACKAGE_VENDOR "sqlbak developers")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "sqlbak developers")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "consistent hot backups of SQLite databases")
set(CPACK_PACKAGE_DESCRIPTION
  "sqlbak keeps SQLite databases safe. The daemon sqlbakd takes consistent hot
backups through SQLite's online backup API on a systemd calendar schedule,
while applications keep reading and writing, in WAL and rollback-journal mode.
Backups are stored incrementally at page level (every backup is a full restore
point), compressed with zstd or gzip, checksummed with SHA-256, checked with
PRAGMA integrity_check, and kept in a local directory or S3-compatible object
storage with grandfather-father-son retention.

sqlbakctl lists, verifies and restores backups, reports health in the
monitoring-plugins convention, and also works without the daemon (--offline)
for cron jobs and disaster recovery. The daemon alerts by e-mail or webhook and
serves Prometheus metrics and a small dashboard.

Nothing is enabled on installation: add databases to /etc/sqlbak/sqlbak.yaml,
then run: systemctl enable --now sqlbakd")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)  # the package follows Debian, not CMAKE_INSTALL_PREFIX
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # sqlbak_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "sqlbak developers")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Shared libraries from dpkg-shlibdeps; systemd for systemd-sysusers and
# systemd-tmpfiles, which the maintainer scripts run.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "sqlite3")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${SQLBAK_PACKAGING_DIR}/debian/conffiles
  ${SQLBAK_PACKAGING_DIR}/debian/postinst
  ${SQLBAK_PACKAGING_DIR}/debian/prerm
  ${SQLBAK_PACKAGING_DIR}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)  # 0755 scripts, 0644 conffiles

# Source packages (cpack -G TGZ --config CPackSourceConfig.cmake) leave out
# build trees and the test peers' node_modules.
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/" "/node_modules/" "__pycache__")

include(CPack)

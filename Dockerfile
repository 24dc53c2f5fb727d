# Dockerfile — fanout images for compose.yaml, built from the Debian package
# (debian/) on Debian 12, so an image has exactly what `apt install
# ./fanoutd_*.deb` gives, runtime libraries resolved by dpkg.
#
#   build    the build dependencies of debian/control; dpkg-buildpackage
#   lb       nginx (Debian's 1.22, the version the tests check
#            conf/nginx.conf with) + the packaged web page
#   runtime  (default target) the fanoutd package: fanoutd, fanout-cli, the
#            backends; runs as an unprivileged user
#
#   docker build -t fanout .            # runtime image
#   docker build --target lb -t fanout-lb .

FROM debian:12 AS build
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src/fanout
COPY . .
RUN apt-get update \
 && apt-get install -y --no-install-recommends dpkg-dev debhelper ca-certificates \
 && apt-get build-dep -y ./ \
 && DEB_BUILD_OPTIONS="nocheck noddebs parallel=$(nproc)" dpkg-buildpackage -us -uc -b \
 && mkdir /debs && mv ../fanoutd_*.deb ../libfanout-plugin-dev_*.deb /debs/ \
 && dpkg-deb -x /debs/fanoutd_*.deb /out

FROM debian:12-slim AS lb
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log
COPY conf/nginx.conf /etc/nginx/nginx.conf
COPY --from=build /out/usr/share/fanout/web /usr/share/fanout/web
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]

FROM debian:12-slim AS runtime
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /debs/fanoutd_*.deb /tmp/
RUN apt-get update \
 && apt-get install -y --no-install-recommends /tmp/fanoutd_*.deb curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* /tmp/*.deb \
 && useradd --system --no-create-home --shell /usr/sbin/nologin fanout
COPY conf/fanout-compose.ini /etc/fanout/compose.ini
USER fanout
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=2s --retries=3 \
  CMD curl -fsS -o /dev/null http://127.0.0.1:8080/readyz || exit 1
CMD ["fanoutd", "-c", "/etc/fanout/fanout.ini"]

# A stand-in for valkey/valkey:8 where no registry is reachable
# (compose.podman.yaml): Debian 12's redis-server (the same RESP2 pub/sub and
# functions) behind the names compose.yaml calls, valkey-server (listening
# on every address without protected mode, as Valkey's image does) and
# valkey-cli.
FROM debian:12-slim AS broker
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && printf '#!/bin/sh\nexec redis-server --bind 0.0.0.0 --protected-mode no "$@"\n' \
      > /usr/local/bin/valkey-server \
 && chmod 755 /usr/local/bin/valkey-server \
 && ln -s /usr/bin/redis-cli /usr/local/bin/valkey-cli
EXPOSE 6379
CMD ["valkey-server"]

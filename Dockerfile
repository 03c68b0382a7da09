# One image with the three commands; docker-compose.yaml picks the command per service.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/worker ./worker && \
    CGO_ENABLED=0 go build -o /out/starter ./starter && \
    CGO_ENABLED=0 go build -o /out/api ./api

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/

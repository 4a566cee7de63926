package ldapadapter_test

import (
	"context"
	"net"

	ber "github.com/go-asn1-ber/asn1-ber"

	"github.com/replink/replink/internal/slapdtest"
)

type net_Conn = net.Conn

func noticeFrame() []byte { return slapdtest.NoticeOfDisconnection() }

// refusingPeer answers the request with op tag op with result code code.
func refusingPeer(op int, code int64) func(context.Context, string, string) (net.Conn, error) {
	return func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go func() {
			defer server.Close()
			for {
				pkt, err := ber.ReadPacket(server)
				if err != nil {
					return
				}
				id := pkt.Children[0].Value.(int64)
				tag := int(pkt.Children[1].Tag)
				c := int64(0)
				if tag == op {
					c = code
				}
				switch tag {
				case 0:
					server.Write(result(id, 1, c))
				case 3:
					server.Write(result(id, 5, c))
				}
			}
		}()
		return client, nil
	}
}
